// /docs: Swagger UI (npm swagger-ui-dist, served from this server) renders the
// OpenAPI document. It reads nothing but this origin's document: no validator
// badge (it would call a third-party site), no URL taken from the query string.
window.SwaggerUIBundle({
  url: '/api/v1/openapi.json',
  dom_id: '#api-docs',
  validatorUrl: null,
  queryConfigEnabled: false,
  deepLinking: true,
});
