/**
 * The lab service of a remote node (docs/node.md), as the page sees it: the same LabApi as this tab's
 * policy worker, over the browser's WebSocket. The token travels as a WebSocket subprotocol (a page
 * cannot set headers on a socket) and is not stored.
 */
import { connectLabNode, type NodeAddress, type RemoteLab } from '../core/lab/rpc';
import { importRun } from '../core/run/store';
import { openRunStore } from './runstore';

export function connectRemoteNode(address: NodeAddress): RemoteLab {
  return connectLabNode(address, (url, protocols) => new WebSocket(url, protocols));
}

/** Keeps a run file (a run pulled from a node) in this browser's run store. */
export async function keepRunInBrowser(bytes: Uint8Array, fileName: string) {
  return importRun(await openRunStore(), bytes, fileName);
}
