import { defineConfig, mergeConfig } from 'vite';
import base from '../../vite.config';
export default mergeConfig(base, defineConfig({ root: __dirname, publicDir: '../../public', build: { outDir: '/tmp/exp/webdist', emptyOutDir: true } }));
