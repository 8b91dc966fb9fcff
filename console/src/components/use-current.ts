// Whether an answer still concerns what the page shows: a slow answer for a previous choice must not land on the next.
import { useRef } from "preact/hooks";

/** A check that `candidate` is still the key the component was last rendered with (a camera, an alert, a query). */
export function useStillShown<T>(key: T): (candidate: T) => boolean {
  const shown = useRef(key);
  shown.current = key;
  return (candidate) => Object.is(shown.current, candidate);
}
