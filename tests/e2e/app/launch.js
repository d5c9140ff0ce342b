// SMART standalone launch: discover the server from its iss, then go to its authorize endpoint
// with a PKCE (S256) challenge. `window.E2E` comes from config.js, written by the test.
FHIR.oauth2
  .authorize({
    iss: window.E2E.iss,
    clientId: window.E2E.clientId,
    scope: "launch/patient patient/*.rs openid fhirUser offline_access",
    redirectUri: "index.html",
    pkceMode: "required",
  })
  .catch((error) => {
    document.getElementById("error").textContent = String((error && error.message) || error);
  });
