import { defineConfig } from '@playwright/test';

// Berth's browser end-to-end tests. `global-setup.ts` starts the server binary (built
// beforehand: `cargo build -p server` and `cargo run -p xtask -- site`) on a free port with a
// fresh data directory and exports its URL as BERTH_E2E_BASE_URL, after starting a test
// registry (`cargo build -p testregistry --bins`) and the Aptible stand-in (`cargo build -p
// testaptible --bins`); see run.sh.
//
// Browsers are not downloaded: Debian's chromium is used (`apt-get install chromium`);
// override its path with CHROMIUM_PATH.
const chromium = {
  browserName: 'chromium' as const,
  headless: true,
  launchOptions: {
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  },
};

export default defineConfig({
  testDir: './tests',
  outputDir: './test-results',
  globalSetup: './global-setup.ts',
  fullyParallel: false,
  workers: 1,
  retries: 0,
  forbidOnly: !!process.env.CI,
  timeout: 30_000,
  expect: { timeout: 10_000 },
  reporter: [['list']],
  use: {
    // Set by global-setup.ts before the workers start.
    baseURL: process.env.BERTH_E2E_BASE_URL,
    actionTimeout: 10_000,
    navigationTimeout: 15_000,
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
  },
  projects: [
    {
      // The WebAssembly bundle hydrates each page; tests wait for hydration before acting.
      name: 'hydrate',
      testIgnore: /phone\.spec\.ts/,
      use: { ...chromium, javaScriptEnabled: true },
    },
    {
      // No JavaScript: forms post natively and the server redirects back.
      name: 'ssr',
      testIgnore: /phone\.spec\.ts/,
      use: { ...chromium, javaScriptEnabled: false },
    },
    {
      // A phone's screen: no page may scroll sideways.
      name: 'phone',
      testMatch: /phone\.spec\.ts/,
      use: { ...chromium, javaScriptEnabled: true, viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true },
    },
  ],
});
