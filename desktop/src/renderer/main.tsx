/** The renderer's entry: pick the transport to the core and render the terminal UI. */
// First: zod must not probe for eval under the CSP (see the module).
import './zod-jitless';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import { selectTransport } from './transport';

const root = document.getElementById('root');
if (root !== null) {
  const transport = selectTransport({ posTerminal: Reflect.get(window, 'posTerminal') as unknown });
  createRoot(root).render(
    <StrictMode>
      <App transport={transport} />
    </StrictMode>,
  );
}
