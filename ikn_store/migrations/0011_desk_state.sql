-- A desk disabled or assigned permanently to one person (columns from 0009) became part
-- of desk_booking_places here, as two new columns: a database older than this drops
-- the view, whose source (ikn_store/sql/booking/) makes it again with them.
DROP VIEW IF EXISTS desk_booking_places;
