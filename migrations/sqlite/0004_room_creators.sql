-- Who made a room, so that empty rooms made by guests can expire; rooms
-- from before this column (and the seeded ones) have none and stay.
ALTER TABLE rooms ADD COLUMN creator TEXT;
ALTER TABLE rooms ADD COLUMN by_guest BOOLEAN NOT NULL DEFAULT FALSE;
