"""The referrals slice: protection referrals attached to crossings (``service``), their
request (``schemas``) and endpoints (``controller``)."""
