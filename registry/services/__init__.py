"""Services: plain async functions taking the session and the acting officer explicitly."""
