// Renders /api/v1/openapi.json with the vendored Swagger UI (no CDN, works offline).
window.ui = SwaggerUIBundle({
  url: "/api/v1/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  persistAuthorization: false,
});
