/** The renderer's entry: pick the transport to the core and render the terminal UI. */
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
