// `npm run build -w @weft/workbench`: bundles the page into dist/web/.
import { buildBundle, WEB_OUT } from '../src/bundle.js'
await buildBundle()
console.log(`workbench page built into ${WEB_OUT}`)
