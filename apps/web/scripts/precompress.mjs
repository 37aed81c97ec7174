// Writes a gzip twin (`name.js.gz`) beside every text file of the build: the gateway (aiohttp) and nginx
// (`gzip_static`) send it to browsers that accept gzip, so pages transfer compressed without compressing
// on every request. Run after `vite build`, in the app's folder (apps/web, apps/admin): `node …/precompress.mjs`
// compresses `./dist`.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'

const root = join(process.cwd(), 'dist')
const compressible = /\.(js|css|html|svg|json|txt|map)$/

function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) walk(path)
    else if (compressible.test(name)) writeFileSync(`${path}.gz`, gzipSync(readFileSync(path), { level: 9 }))
  }
}

walk(root)
