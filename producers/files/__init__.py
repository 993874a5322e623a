"""POS export files (CSV, XML, TXT, fixed-width) to ``PosTicket``: a mapping spec per source, a watcher."""
