/**
 * The page: the lab service in this tab's policy worker or on a remote node (the one place that
 * decides how the service is reached), and the Svelte lab that talks to it.
 */
import { mount } from 'svelte';
import App from './app/App.svelte';
import { lab } from './app/lib/lab.svelte';
import './app/global.css';
import { connectPolicyWorker, warmPageModules } from './browser/client';
import { connectRemoteNode, keepRunInBrowser } from './browser/remote';

const target = document.getElementById('app');
if (!target) throw new Error('index.html has no #app element');
lab.start({ browser: connectPolicyWorker, node: connectRemoteNode, keepRun: keepRunInBrowser });
export default mount(App, { target, props: { warm: warmPageModules } });
