// Copies the files the web UI loads (and their licences) from node_modules into lode/web/static/vendor.
import { copyFileSync, mkdirSync } from "node:fs";

const target = new URL("../lode/web/static/vendor/", import.meta.url);
const files = {
  "cytoscape/dist/cytoscape.min.js": "cytoscape.min.js",
  "cytoscape/LICENSE": "cytoscape.LICENSE",
  // the dagre layout, with @dagrejs/dagre bundled in: layered call graphs with files as compound nodes
  "cytoscape-dagre/dist/cytoscape-dagre.min.js": "cytoscape-dagre.min.js",
  "cytoscape-dagre/LICENSE": "cytoscape-dagre.LICENSE",
  // Swagger UI for /docs, served from the package so that it renders offline
  "swagger-ui-dist/swagger-ui-bundle.js": "swagger-ui-bundle.js",
  "swagger-ui-dist/swagger-ui.css": "swagger-ui.css",
  "swagger-ui-dist/LICENSE": "swagger-ui.LICENSE",
  "swagger-ui-dist/NOTICE": "swagger-ui.NOTICE",
};
mkdirSync(target, { recursive: true });
for (const [from, to] of Object.entries(files)) copyFileSync(new URL(`node_modules/${from}`, import.meta.url), new URL(to, target));
