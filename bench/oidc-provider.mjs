// The reference for bench/token.sh: node oidc-provider issuing RS256 JWT access
// tokens by client credentials to CCRI's patient-access client (Basic auth), the
// request the mock is measured on. `opaque` as the second argument issues opaque
// tokens instead, oidc-provider's default and its fastest path.
//   node bench/oidc-provider.mjs PORT [jwt|opaque]
import { generateKeyPairSync } from "node:crypto";
import Provider from "oidc-provider";

const port = Number(process.argv[2]);
const format = process.argv[3] ?? "jwt";
const resource = "http://127.0.0.1/ccri-fhir/R4";
const signingKey = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ format: "jwk" });

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: "patient-access",
    client_secret: "IShTVi8mRSV7bVREuU1freiDo79y_8fLX3BBw2nf2eIpv9A_r91VlVuF2LOiK_zLZAkBQCusEXLp_o6DEIgvaQ",
    grant_types: ["client_credentials"],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: "client_secret_basic",
  }],
  ttl: { ClientCredentials: 90 * 60 },
  jwks: { keys: [{ ...signingKey, alg: "RS256", use: "sig", kid: "bench" }] },
  features: {
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: "patient/Patient.read user/Patient.read",
        audience: resource,
        accessTokenTTL: 90 * 60,
        accessTokenFormat: format,
        jwt: { sign: { alg: "RS256" } },
      }),
    },
  },
});
provider.listen(port, "127.0.0.1");
