// Sign-in: which bearer token the pane sends to the API.
//
// In order of preference:
//   dev   `?dev=anna` (or config.json "devUser"): `Bearer dev:anna`, accepted only by an API
//         started in development mode on loopback.
//   naa   MSAL.js nested app authentication (createNestablePublicClientApplication): the
//         Office host signs the user in; needs config.json "clientId" and the NestedAppAuth
//         requirement set. MSAL is served from vendor/ (copied from node_modules by npm ci).
//   sso   Office SSO (OfficeRuntime.auth.getAccessToken) on hosts without NAA.
//   none  not signed in: the pane explains how to open it; an API in development mode
//         lists its users (GET /v1/dev/users: the configured dev users and every local
//         user with data, e.g. one the CLI synced for), and the pane offers them.

const DEV_NAME = /^[A-Za-z0-9._-]{1,64}$/;
export const MSAL_SCRIPT = "vendor/msal-browser.min.js";

/** The pane's config.json merged over defaults; a missing or bad file means the defaults. */
export async function loadConfig(fetchImpl = globalThis.fetch) {
  const defaults = { apiBase: "", clientId: "", authority: "", scopes: [], devUser: "" };
  try {
    const response = await fetchImpl("config.json", { cache: "no-store" });
    if (!response.ok) return defaults;
    const config = await response.json();
    return config && typeof config === "object" ? { ...defaults, ...config } : defaults;
  } catch {
    return defaults;
  }
}

/** Who the dev sign-in can pick: the users of an API in development mode, else []. */
export async function devUsers(apiBase = "", fetchImpl = globalThis.fetch) {
  try {
    const response = await fetchImpl(`${apiBase}/v1/dev/users`, { cache: "no-store" });
    if (!response.ok) return [];
    const body = await response.json();
    const users = Array.isArray(body?.users) ? body.users : [];
    return users.filter((name) => typeof name === "string" && DEV_NAME.test(name));
  } catch {
    return [];
  }
}

/** Choose how to sign in. Returns {mode, getToken(), explain, devUsers}. */
export async function createAuth({
  config = {}, params, Office, OfficeRuntime, loadMsal, fetchImpl = globalThis.fetch,
} = {}) {
  const dev = params?.get("dev") || config.devUser;
  if (dev) {
    if (!DEV_NAME.test(dev)) throw new Error(`"${dev}" is not a valid development user name.`);
    const token = `dev:${dev}`;
    return { mode: "dev", user: dev, getToken: async () => token };
  }
  const scopes = Array.isArray(config.scopes) ? config.scopes : [];
  const naa = supportsNaa(Office) && config.clientId && scopes.length && loadMsal;
  if (naa) {
    try {
      const msal = await loadMsal();
      const app = await msal.createNestablePublicClientApplication({
        auth: { clientId: config.clientId, authority: config.authority || undefined },
      });
      return { mode: "naa", getToken: () => naaToken(app, scopes) };
    } catch {
      // fall through to Office SSO: an old host or a blocked script
    }
  }
  if (OfficeRuntime?.auth?.getAccessToken) {
    return {
      mode: "sso",
      getToken: () =>
        OfficeRuntime.auth.getAccessToken({ allowSignInPrompt: true, allowConsentPrompt: true }),
    };
  }
  const users = await devUsers(config.apiBase || "", fetchImpl);
  return {
    mode: "none",
    getToken: async () => null,
    devUsers: users,
    explain: users.length
      ? "You are not signed in. This server is in development mode: sign in as one of its " +
        `users (${users.map((name) => `?dev=${name}`).join(", ")}).`
      : "You are not signed in. Open the pane from Word or Outlook; for development, " +
        "add ?dev=anna to the address.",
  };
}

function supportsNaa(Office) {
  try {
    return Boolean(Office?.context?.requirements?.isSetSupported("NestedAppAuth", "1.1"));
  } catch {
    return false;
  }
}

async function naaToken(app, scopes) {
  try {
    return (await app.acquireTokenSilent({ scopes })).accessToken;
  } catch {
    return (await app.acquireTokenPopup({ scopes })).accessToken; // consent or sign-in
  }
}

/** Load MSAL's browser build once (a classic script that defines window.msal). */
export function loadMsalScript(doc = globalThis.document) {
  if (globalThis.msal) return Promise.resolve(globalThis.msal);
  return new Promise((resolve, reject) => {
    const script = doc.createElement("script");
    script.src = MSAL_SCRIPT;
    script.onload = () => (globalThis.msal ? resolve(globalThis.msal) : reject(new Error("no msal")));
    script.onerror = () => reject(new Error("MSAL could not be loaded"));
    doc.head.append(script);
  });
}
