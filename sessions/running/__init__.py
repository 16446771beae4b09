"""The running sessions of everyone in one's scope: /sessions/running/ and GET /api/v1/sessions."""
