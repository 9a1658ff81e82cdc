/**
 * The preload (bundled to dist/electron/preload.cjs; it runs sandboxed, with context isolation): puts
 * exactly the UI API in the page's world as `window.posTerminal`, and nothing else.
 */
import './jitless';
import { contextBridge, ipcRenderer } from 'electron';
import { API_GLOBAL } from '../main/channels';
import { createTerminalApi } from './api';

contextBridge.exposeInMainWorld(API_GLOBAL, createTerminalApi(ipcRenderer));
