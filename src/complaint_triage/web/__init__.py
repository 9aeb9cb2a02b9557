"""The team workspace: a server-rendered web app on the store (Starlette, Jinja2, no script).

app      routes, sign-in, CSRF checks and security headers
auth     argon2 passwords, signed session cookies, CSRF tokens, the failed-login limit
views    the queue (filters, order) and case pages as data, scoped to what a user may see
actions  case actions, the sources page, replaying failures, the summary of a day
"""
