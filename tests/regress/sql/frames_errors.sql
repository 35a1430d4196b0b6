--
-- frames_errors: dts.frames() on hand-made messages, good and bad.
--
-- Each message is written here frame by frame in hex (kind byte, varint
-- body length, body; see docs/frames.md); pg_temp.msg() adds the version
-- byte and the CRC-32C trailer.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_dts;
RESET client_min_messages;
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';

-- CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), bit by bit
CREATE FUNCTION pg_temp.crc32c(data bytea) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
	crc bigint := 4294967295;
BEGIN
	FOR i IN 0 .. length(data) - 1 LOOP
		crc := crc # get_byte(data, i);
		FOR j IN 1 .. 8 LOOP
			IF (crc & 1) = 1 THEN
				crc := (crc >> 1) # 2197175160;
			ELSE
				crc := crc >> 1;
			END IF;
		END LOOP;
	END LOOP;
	RETURN crc # 4294967295;
END;
$$;

-- a message of the given version holding the given frames
CREATE FUNCTION pg_temp.msg(frames bytea, version int DEFAULT 1) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT AS $$
	SELECT m || decode(lpad(to_hex(pg_temp.crc32c(m)), 8, '0'), 'hex')
	  FROM (SELECT set_byte('\x00'::bytea, 0, version) || frames AS m) AS s
$$;

-- the frames used below
CREATE TEMP TABLE f (name text PRIMARY KEY, bytes bytea);
INSERT INTO f VALUES
	-- BEGIN xid 1000, final LSN 0/1000000, commit time 0 (2000-01-01)
	('begin', '\x4207e8078080800800'),
	-- COMMIT xid 1000, commit LSN 0/1000000, end LSN 0/1000030
	('commit', '\x430c00e80780808008b080800800'),
	-- RELATION 100000 public."Tab le": id int4 (key, int4 encoding),
	-- "Näme" text (text), f float8 (float8), n numeric(10,2) (binary)
	('rel', '\x5234a08d06067075626c696306546162206c6564040102696417013400054ec3a46d65190174000166bd05016400016ea40d8c805062'),
	-- INSERT (1, 'x"y\z', 1.5, 3.14)
	('ins', '\x4920a08d060002057822795c7a3ff80000000000000c000200000000000200030578'),
	-- INSERT (-2, NULL, -0.25, NULL)
	('insnull', '\x490ea08d06010a03bfd0000000000000'),
	-- INSERT whose "Näme" is not UTF-8
	('insbadtext', '\x491da08d06000202c3283ff80000000000000c000200000000000200030578'),
	-- INSERT whose numeric image has a byte too many
	('insleftover', '\x491ea08d060002026f6b3ff80000000000000d00020000000000020003057800'),
	-- INSERT into relation 777, never described
	('insunknown', '\x490489060002'),
	-- RELATION 100001 public.odd: x of type OID 4000000000 (binary), and
	-- an INSERT into it
	('rel2', '\x521aa18d06067075626c6963036f6464640101017880d0acf30e0162'),
	('ins2', '\x4907a18d0600020102'),
	-- transactional MESSAGE 'pfx' 'héllo', and one whose content is not text
	('msgtext', '\x4d100190808008037066780668c3a96c6c6f'),
	('msgbin', '\x4d0c0090808008037066780200ff'),
	-- TRUNCATE CASCADE RESTART IDENTITY of relations 100000 and 777
	('trunc', '\x54070302a08d068906'),
	-- a frame of unknown kind 'Z', and a BEGIN claiming 50 body bytes
	('zkind', '\x5a00'),
	('longbody', '\x423201');

CREATE FUNCTION pg_temp.frames_of(VARIADIC names text[]) RETURNS bytea
LANGUAGE sql STABLE STRICT AS $$
	SELECT string_agg(f.bytes, ''::bytea ORDER BY n.ord)
	  FROM unnest(names) WITH ORDINALITY AS n(name, ord)
	  JOIN f USING (name)
$$;

-- a change before its relation was described: the stream was not read
-- from its start
SELECT dts.frames(pg_temp.msg(pg_temp.frames_of('begin', 'insunknown', 'commit')));

-- good messages
SELECT dts.frames(pg_temp.msg(pg_temp.frames_of('begin', 'commit')));
SELECT dts.frames(pg_temp.msg(pg_temp.frames_of('rel', 'begin', 'ins')));
-- the relation is remembered from the previous message
SELECT dts.frames(pg_temp.msg(pg_temp.frames_of('insnull', 'commit')));
SELECT dts.frames(pg_temp.msg(pg_temp.frames_of('msgtext', 'msgbin', 'trunc')));
SELECT dts.frames(NULL);

-- malformed messages
SELECT dts.frames('');
SELECT dts.frames(pg_temp.msg(''));		-- no frame
SELECT dts.frames('\x01');
SELECT dts.frames(pg_temp.msg(pg_temp.frames_of('begin'), 2));
SELECT dts.frames(overlay(pg_temp.msg(pg_temp.frames_of('begin'))
						  placing '\x43' from 2));
SELECT dts.frames(pg_temp.msg(pg_temp.frames_of('begin', 'zkind')));
SELECT dts.frames(pg_temp.msg(pg_temp.frames_of('longbody')));

-- bad values
SELECT dts.frames(pg_temp.msg(pg_temp.frames_of('insbadtext')));
SELECT dts.frames(pg_temp.msg(pg_temp.frames_of('insleftover')));
SELECT dts.frames(pg_temp.msg(pg_temp.frames_of('rel2')));
SELECT dts.frames(pg_temp.msg(pg_temp.frames_of('ins2')));

RESET TimeZone;
RESET DateStyle;
