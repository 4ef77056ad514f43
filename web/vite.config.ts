import { fileURLToPath, URL } from 'node:url';

import vue from '@vitejs/plugin-vue';
import { defineConfig } from 'vitest/config';

// `npm run dev` serves the app on :5173 and sends the API and the runtime settings to
// the platform that `make run` serves on :8080 (WANGGE_WEB_BACKEND to point elsewhere).
const backend = process.env.WANGGE_WEB_BACKEND ?? 'http://127.0.0.1:8080';

export default defineConfig({
  plugins: [vue()],
  resolve: { alias: { '@': fileURLToPath(new URL('./src', import.meta.url)) } },
  server: {
    host: '127.0.0.1',
    port: 5173,
    proxy: { '/api/': backend, '/app-config.json': backend },
  },
  build: { outDir: 'dist', sourcemap: true, chunkSizeWarningLimit: 700 },
  test: { environment: 'jsdom', include: ['tests/**/*.test.ts'] },
});
