"""POS cloud API pollers: vendor payloads (Square, Shopify, Lightspeed X-Series, Clover) to ``PosTicket``.

Each vendor module holds pure mapping functions (no I/O); :mod:`producers.pos.vendors` holds the request and
page shapes of each vendor API, :mod:`producers.pos.poller` the incremental sync around them.
"""
