"""Staff shifts into ``staff.shifts``: POS labour APIs (Square timecards, Clover shifts) and rota/clock-in CSVs."""
