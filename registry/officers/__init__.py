"""The officers slice: accounts (creation, passwords, activation), login with its throttle,
the bootstrap admin (``service``), their requests (``schemas``) and the login and account
endpoints (``controller``)."""
