import { fileURLToPath, URL } from 'node:url'
import vue from '@vitejs/plugin-vue'
import { defineConfig } from 'vitest/config'

// The admin app is served by the gateway at `/admin/`, beside the web app, on the API's origin (same session
// cookies, no CORS). It shares the web app's API layer (`@shared/api`: the typed client, problem+json
// handling and the generated types), so both apps speak to the gateway one way.
export default defineConfig({
  base: '/admin/',
  plugins: [vue()],
  resolve: {
    alias: {
      '@': fileURLToPath(new URL('./src', import.meta.url)),
      '@shared': fileURLToPath(new URL('../web/src', import.meta.url)),
    },
  },
  server: { proxy: { '/api': 'http://127.0.0.1:8000' } },
  build: { target: 'es2022', sourcemap: false },
  test: { environment: 'jsdom', include: ['src/**/*.spec.ts'] },
})
