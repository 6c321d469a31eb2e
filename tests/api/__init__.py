"""The JSON API as a whole: OpenAPI documents, CSRF and content types, schemathesis fuzzing."""
