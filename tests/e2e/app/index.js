// The redirect target: exchange the code (with the PKCE verifier) for tokens, read the patient in
// context, search their observations, then refresh the token and read again. Each result is
// shown as soon as it is known; #done is written last, whatever happened (the test waits for it).
function show(id, text) {
  document.getElementById(id).textContent = text;
}

async function main() {
  const client = await FHIR.oauth2.ready();
  show("patient-id", client.patient.id);
  show("fhir-user", client.getFhirUser() || "");
  show("scope", client.state.tokenResponse.scope || "");
  const patient = await client.patient.read();
  const name = (patient.name && patient.name[0]) || {};
  show("patient-name", [...(name.given || []), name.family].filter(Boolean).join(" "));
  const observations = await client.request("Observation?_count=50", { flat: true, pageLimit: 0 });
  show("observations", String(observations.length));
  const before = client.state.tokenResponse.access_token;
  await client.refresh(); // the library's defaults: refresh_token only, as a public client
  const again = await client.patient.read();
  const renewed = client.state.tokenResponse.access_token !== before && again.id === patient.id;
  show("refreshed", renewed ? "yes" : "no");
}

main()
  .catch((error) => show("error", String((error && error.message) || error)))
  .finally(() => show("done", "done"));
