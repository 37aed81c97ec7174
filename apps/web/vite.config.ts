import { fileURLToPath, URL } from 'node:url'
import vue from '@vitejs/plugin-vue'
import { defineConfig } from 'vitest/config'

// The app is served by the gateway on its own origin (`/`), so API calls are same-origin and the session
// cookies need no CORS. `vite dev` proxies /api to a gateway on :8000 for the same effect.
export default defineConfig({
  plugins: [vue()],
  resolve: { alias: { '@': fileURLToPath(new URL('./src', import.meta.url)) } },
  server: { proxy: { '/api': 'http://127.0.0.1:8000' } },
  build: {
    target: 'es2022',
    sourcemap: false,
    // dist/.vite/manifest.json: the chunk graph `make bench` reads to size the home page's first load.
    manifest: true,
    // three.js (the 3D viewers' chunk, loaded only with a 3D result) is ~600 kB minified on its own.
    chunkSizeWarningLimit: 650,
  },
  test: {
    environment: 'jsdom',
    include: ['src/**/*.spec.ts'],
  },
})
