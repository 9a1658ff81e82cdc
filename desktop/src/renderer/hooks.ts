import { useEffect, useRef, useState, type RefObject } from 'react';

/**
 * The current time at each render, and a re-render every `intervalMs` while the component is mounted
 * (the time is read when rendering, so a render for another reason is never up to a tick behind).
 */
export function useNow(intervalMs: number): number {
  const [, setTick] = useState(0);
  useEffect(() => {
    const id = window.setInterval(() => setTick((t) => t + 1), intervalMs);
    return () => window.clearInterval(id);
  }, [intervalMs]);
  return Date.now();
}

/** Moves keyboard focus to the element once, when the component mounts (a new screen). */
export function useFocusOnMount<T extends HTMLElement>(): RefObject<T | null> {
  const ref = useRef<T | null>(null);
  useEffect(() => {
    ref.current?.focus({ preventScroll: true });
  }, []);
  return ref;
}
