"""POS vendors' push notifications (webhooks) into pos.tickets; the pollers stay the safety net."""
