/** drizzle-kit config of the PostgreSQL dialect: `npx drizzle-kit generate --config providers/host/drizzle-pg.config.ts`. */
import { defineConfig } from 'drizzle-kit'

export default defineConfig({
  dialect: 'postgresql',
  schema: './providers/host/src/store/schema-pg.ts',
  out: './providers/host/drizzle-pg',
})
