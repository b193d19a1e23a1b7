/// <reference types="vitest/config" />
import { defineConfig } from "vite";

// The API serves dist/ at `/`; assets are referenced relatively so the
// bundle works wherever it is mounted. Routes are hash routes (#/pipes), so
// the server needs no SPA fallback.
export default defineConfig({
  base: "./",
  oxc: { jsx: { runtime: "automatic" } },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    chunkSizeWarningLimit: 600,
  },
  server: {
    // `npm run dev` talks to a local API (make dev) through this proxy.
    proxy: {
      "/v1": process.env.SLUICE_API ?? "http://127.0.0.1:8080",
    },
  },
  test: {
    environment: "node",
    include: ["src/**/*.test.ts"],
  },
});
