// Hash routing (#/file, #/main-courante…): the API serves one index.html and every page is a module of pages/.
import { useEffect, useState } from "preact/hooks";

export function currentPath(): string {
  const hash = globalThis.location?.hash ?? "";
  return hash.startsWith("#/") ? hash.slice(1).split("?")[0] || "/" : "/";
}

export function navigate(path: string): void {
  globalThis.location.hash = `#${path}`;
}

export function useRoute(): string {
  const [path, setPath] = useState(currentPath());
  useEffect(() => {
    const update = (): void => setPath(currentPath());
    globalThis.addEventListener("hashchange", update);
    return () => globalThis.removeEventListener("hashchange", update);
  }, []);
  return path;
}

/** A parameter of the hash's query (#/relecture?camera=…), or null. */
export function hashParameter(name: string): string | null {
  const hash = globalThis.location?.hash ?? "";
  const query = hash.includes("?") ? hash.slice(hash.indexOf("?") + 1) : "";
  return new URLSearchParams(query).get(name);
}
