// Starts the bundled Swagger UI on the OpenAPI 3.0 rendition of the API (/docs/openapi.json).
// A file rather than inline code, so /docs runs under the same strict Content-Security-Policy as
// the web UI.
window.addEventListener("load", () => {
  window.ui = SwaggerUIBundle({
    url: "/docs/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
