"""One outbox for every message we send (PRODUCT.md "Notifications"): `services.notify` writes,
the `notifications.send_due` beat task sends, email through Django's backends and SMS through
`portal.notifications.sms`."""
