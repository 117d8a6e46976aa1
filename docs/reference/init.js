// Renders the API's own OpenAPI document with Redoc (bundled, served by the API: no CDN).
Redoc.init('/openapi.json', { expandResponses: '200,201,202', hideHostname: true, pathInMiddlePanel: true }, document.getElementById('redoc'));
