// Drive a SMART standalone launch in headless Chromium like a person: open the app's launch page,
// sign in on Santinel's login page, approve the consent page, wait for the app to show the
// patient. Prints one JSON object on stdout (never a token: only whether one was sent).
//
//   node standalone_launch.mjs LAUNCH_URL
//   env: E2E_USERNAME, E2E_PASSWORD, E2E_PATIENT (the id to pick if a picker is shown),
//        CHROMIUM (default /usr/bin/chromium)
import { chromium } from "playwright-core";

const launchUrl = process.argv[2];
const { E2E_USERNAME: username, E2E_PASSWORD: password, E2E_PATIENT: patientId } = process.env;
const STEP_MS = 15000;
const started = Date.now();

const result = { console: [], failed: [], pages: [], tokenRequests: [], tokenResponses: [] };

function where(url) {
  const u = new URL(url);
  return `${u.origin}${u.pathname}`;
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--headless=new"],
});
const page = await browser.newPage();
try {
  page.on("console", (message) => {
    if (message.type() === "error" || message.type() === "warning") {
      const at = message.location().url ? ` (${where(message.location().url)})` : "";
      result.console.push(`${message.type()}: ${message.text()}${at}`);
    }
  });
  page.on("pageerror", (error) => result.console.push(`pageerror: ${error}`));
  page.on("requestfailed", (request) => {
    const reason = request.failure() ? request.failure().errorText : "?";
    result.failed.push(`${request.method()} ${where(request.url())}: ${reason}`);
  });
  page.on("framenavigated", (frame) => {
    if (frame === page.mainFrame()) result.pages.push(where(frame.url()));
  });
  page.on("request", async (request) => {
    const url = new URL(request.url());
    if (url.pathname.endsWith("/oauth/authorize")) {
      result.authorize = {
        code_challenge_method: url.searchParams.get("code_challenge_method"),
        has_code_challenge: Boolean(url.searchParams.get("code_challenge")),
        aud: url.searchParams.get("aud"),
        scope: url.searchParams.get("scope"),
      };
    }
    if (url.pathname.endsWith("/oauth/token") && request.method() === "POST") {
      const form = new URLSearchParams(request.postData() || "");
      const entry = {
        grant_type: form.get("grant_type"),
        has_code_verifier: Boolean(form.get("code_verifier")),
        client_id_sent: Boolean(form.get("client_id")),
      };
      result.tokenRequests.push(entry);
      entry.origin = (await request.allHeaders()).origin || null;
    }
  });
  page.on("response", (response) => {
    const url = new URL(response.url());
    if (url.pathname.endsWith("/oauth/token") && response.request().method() === "POST") {
      result.tokenResponses.push({
        status: response.status(),
        allow_origin: response.headers()["access-control-allow-origin"] || null,
      });
    }
  });

  // The app shows its error in #error (e.g. discovery blocked by CORS): stop there, not at a timeout.
  const reach = async (selector) => {
    const element = await page.waitForSelector(`${selector}, #error:not(:empty)`, {
      timeout: STEP_MS,
    });
    if ((await element.getAttribute("id")) === "error") {
      throw new Error(`the app failed at ${where(page.url())}: ${await element.textContent()}`);
    }
    return element;
  };
  await page.goto(launchUrl);
  await reach("#username");
  await page.fill("#username", username);
  await page.fill("#password", password);
  await page.click("#sign-in");

  const next = await page.waitForSelector("#approve, #choose-patient", { timeout: STEP_MS });
  if ((await next.getAttribute("id")) === "choose-patient") {
    result.picker = true;
    await page.check(`#patient-${patientId}`);
    await page.click("#choose-patient");
    await page.waitForSelector("#approve", { timeout: STEP_MS });
  }
  await page.click("#approve");

  await page.waitForSelector("#done:not(:empty)", { timeout: STEP_MS });
  for (const id of ["patient-name", "patient-id", "fhir-user", "scope", "observations", "refreshed", "error"]) {
    result[id.replace("-", "_")] = (await page.textContent(`#${id}`)) || "";
  }
} catch (error) {
  result.exception = String(error).split("\n")[0];
  result.at = where(page.url());
  result.text = (await page.innerText("body").catch(() => "")).slice(0, 600);
} finally {
  await browser.close();
  result.ms = Date.now() - started;
}
console.log(JSON.stringify(result));
