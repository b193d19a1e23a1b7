// Hash routes (#/pipes, #/pipes/<id>, #/new): the server needs no SPA fallback.
import { useSyncExternalStore } from "react";

export type Route = { name: "pipes" } | { name: "pipe"; id: string } | { name: "new" } | { name: "notFound"; path: string };

export function parseHash(hash: string): Route {
  const path = hash.replace(/^#/, "").replace(/\/+$/, "") || "/pipes";
  if (path === "/" || path === "/pipes") return { name: "pipes" };
  if (path === "/new") return { name: "new" };
  const m = /^\/pipes\/([^/]+)$/.exec(path);
  if (m) return { name: "pipe", id: decodeURIComponent(m[1]) };
  return { name: "notFound", path };
}

function subscribe(callback: () => void) {
  window.addEventListener("hashchange", callback);
  return () => window.removeEventListener("hashchange", callback);
}

export function useRoute(): Route {
  const hash = useSyncExternalStore(subscribe, () => window.location.hash);
  return parseHash(hash);
}

export function navigate(path: string) {
  window.location.hash = path;
}

export const href = {
  pipes: "#/pipes",
  pipe: (id: string) => `#/pipes/${encodeURIComponent(id)}`,
  newPipe: "#/new",
};
