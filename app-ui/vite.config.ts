import { defineConfig } from "vitest/config";

// The front end is served from inside the app (tauri.conf.json's
// frontendDist): everything it needs is bundled, nothing is fetched.
export default defineConfig({
  clearScreen: false,
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "safari15",
    assetsInlineLimit: 0,
  },
  test: {
    environment: "happy-dom",
    include: ["tests/**/*.test.ts"],
  },
});
