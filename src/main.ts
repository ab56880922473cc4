/**
 * The page: the lab service in this tab's policy worker (the one place that decides where the
 * service lives), and the Svelte lab that talks to it.
 */
import { mount } from 'svelte';
import App from './app/App.svelte';
import { lab } from './app/lib/lab.svelte';
import './app/global.css';
import { connectPolicyWorker, warmPageModules } from './browser/client';

const target = document.getElementById('app');
if (!target) throw new Error('index.html has no #app element');
lab.start(connectPolicyWorker);
export default mount(App, { target, props: { warm: warmPageModules } });
