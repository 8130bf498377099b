// /docs: Swagger UI over this server's /openapi.json, every asset from this server (no CDN, so it works offline).
"use strict";

window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  validatorUrl: null,  // the badge would ask validator.swagger.io about the schema
});
