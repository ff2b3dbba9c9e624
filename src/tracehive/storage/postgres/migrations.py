"""Versioned schema of the PostgreSQL backend, applied by ``tracehive migrate`` (or on open).

Never edit a released step: add one. ``migrate`` holds a session-level advisory lock for its whole
run, so any number of nodes may start (and migrate) at once: the first applies the steps, the
others wait on the lock and then find nothing left to do.

Choices that differ from SQLite's schema, and why:
- JSON fields are ``json``, not ``jsonb``: ``jsonb`` reorders object keys and drops duplicates, so
  an event would not read back (nor export) as it was sent, and SQLite's export would not equal
  PostgreSQL's. The paths users filter most have expression indexes, as on SQLite.
- Times are ``double precision``: SQLite's NUMERIC keeps integers as integers and fractions as
  doubles; reads turn integral values back into ints (``rows.number``).
- ``seq`` (an identity) plays SQLite's ``rowid``: the insertion order that breaks ties in pages.
"""

from __future__ import annotations

from psycopg import AsyncConnection

# Any constant unique to tracehive: the key of the advisory lock ``migrate`` holds.
MIGRATION_LOCK_KEY = 0x7472_6163_6568  # "tracehe"

MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        r"""
        CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);
        CREATE TABLE projects (
            project_id text PRIMARY KEY,
            name text NOT NULL UNIQUE,
            org_id text NOT NULL,
            workspace_id text NOT NULL,
            created_at bigint NOT NULL
        );
        CREATE TABLE api_keys (
            key_id text PRIMARY KEY,
            key_hash text NOT NULL UNIQUE,
            kind text NOT NULL,
            project_id text NOT NULL REFERENCES projects (project_id),
            created_at bigint NOT NULL,
            revoked_at bigint
        );
        CREATE TABLE events (
            seq bigint GENERATED ALWAYS AS IDENTITY,
            project_id text NOT NULL,
            event_id text NOT NULL,
            session_id text NOT NULL,
            parent_id text,
            event_type text NOT NULL,
            event_name text NOT NULL,
            source text NOT NULL,
            start_time double precision NOT NULL,
            end_time double precision NOT NULL,
            duration double precision NOT NULL,
            error text,
            config json NOT NULL,
            inputs json NOT NULL,
            outputs json,
            metadata json NOT NULL,
            feedback json NOT NULL,
            metrics json NOT NULL,
            user_properties json NOT NULL,
            children_ids json NOT NULL,
            org_id text NOT NULL,
            workspace_id text NOT NULL,
            implicit boolean NOT NULL DEFAULT false,
            updated_at bigint NOT NULL,
            PRIMARY KEY (project_id, event_id)
        );
        CREATE INDEX events_by_session ON events (project_id, session_id, start_time);
        CREATE INDEX events_by_parent ON events (project_id, parent_id);
        CREATE INDEX events_by_time ON events (project_id, start_time);
        CREATE INDEX events_by_type ON events (project_id, event_type, start_time);
        CREATE INDEX events_by_name ON events (project_id, event_name, start_time);
        -- The hot JSON paths (postgres/compile.py HOT_PATHS writes them exactly so).
        CREATE INDEX events_by_model ON events (project_id, (config ->> 'model'))
            WHERE (config ->> 'model') IS NOT NULL;
        CREATE INDEX events_by_user_id ON events (project_id, (user_properties ->> 'user_id'))
            WHERE (user_properties ->> 'user_id') IS NOT NULL;
        CREATE TABLE pending_updates (
            project_id text NOT NULL,
            event_id text NOT NULL,
            payload text NOT NULL,
            created_at bigint NOT NULL,
            PRIMARY KEY (project_id, event_id)
        );
        CREATE TABLE event_aliases (
            project_id text NOT NULL,
            alias_id text NOT NULL,
            event_id text NOT NULL,
            PRIMARY KEY (project_id, alias_id)
        );
        CREATE INDEX event_aliases_by_event ON event_aliases (project_id, event_id);
        -- Deep merge of two JSON objects, patch winning, keys in order (base's, then patch's new
        -- ones): model.event.deep_merge in SQL, so that re-sent events merge in one atomic upsert.
        -- A null in patch is kept as null (unlike RFC 7396).
        CREATE FUNCTION th_merge(base json, patch json) RETURNS json
        LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $fn$
        BEGIN
            IF base IS NULL THEN RETURN patch; END IF;
            IF patch IS NULL THEN RETURN base; END IF;
            IF json_typeof(base) <> 'object' OR json_typeof(patch) <> 'object' THEN RETURN patch; END IF;
            RETURN (
                SELECT coalesce(json_object_agg(m.k, m.v ORDER BY m.o), '{}'::json) FROM (
                    SELECT b.key AS k,
                           CASE WHEN p.key IS NULL THEN b.value
                                WHEN json_typeof(b.value) = 'object' AND json_typeof(p.value) = 'object'
                                THEN th_merge(b.value, p.value)
                                ELSE p.value END AS v,
                           b.ord AS o
                    FROM json_each(base) WITH ORDINALITY AS b (key, value, ord)
                    LEFT JOIN json_each(patch) AS p ON p.key = b.key
                    UNION ALL
                    SELECT p.key, p.value, 4294967296 + p.ord
                    FROM json_each(patch) WITH ORDINALITY AS p (key, value, ord)
                    WHERE NOT EXISTS (SELECT 1 FROM json_each(base) AS b WHERE b.key = p.key)
                ) AS m
            );
        END
        $fn$;
        """,
    ),
    (
        2,
        r"""
        -- The read side (postgres/compile.py, chart.py, session_list.py) answers exactly as the
        -- SQLite backend does, whose filters see JSON through SQLite's types: a JSON number is an
        -- INTEGER when it is written as an integer within int64, else a REAL (a double); the text
        -- form of a value (string filters) is CAST(json_extract(...) AS TEXT); datetimes in JSON
        -- strings are read by SQLite's julianday(). These functions reproduce those rules. None
        -- raises on any stored value: casts happen only after a check says they succeed.

        -- SQLite's CAST(real AS TEXT), printf("%!.15g"): 15 significant digits, ".0" kept,
        -- exponent of at least two digits ("1.0e+20", "2.5e-05"). float8 -> numeric rounds to
        -- 15 significant digits (DBL_DIG) like %.15g. SQLite's own digit loop rounds a tie in the
        -- 16th digit differently now and then (about 0.2% of random doubles with 16-17 digits).
        CREATE FUNCTION th_real_text(r float8) RETURNS text
        LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
        DECLARE
            n numeric;
            sci text;
            mant text;
            x int;
            plain text;
        BEGIN
            IF r = 'NaN'::float8 THEN RETURN NULL; END IF;
            IF r = 'Infinity'::float8 THEN RETURN 'Inf'; END IF;
            IF r = '-Infinity'::float8 THEN RETURN '-Inf'; END IF;
            IF r = 0 THEN RETURN '0.0'; END IF;
            n := r::numeric;
            sci := btrim(to_char(n, '9.99999999999999EEEE'));
            mant := split_part(sci, 'e', 1);
            x := split_part(sci, 'e', 2)::int;
            IF x < -4 OR x >= 15 THEN
                mant := rtrim(mant, '0');
                IF right(mant, 1) = '.' THEN mant := mant || '0'; END IF;
                RETURN mant || 'e' || CASE WHEN x < 0 THEN '-' ELSE '+' END 
                       || CASE WHEN abs(x) < 10 THEN '0' ELSE '' END || abs(x)::text;
            END IF;
            plain := n::text;
            IF position('.' IN plain) = 0 THEN plain := plain || '.0'; END IF;
            RETURN plain;
        END
        $fn$;

        -- SQLite's INTEGER value of a JSON number (written as an integer within int64), else NULL.
        -- Nested CASEs: each cast runs only once the test before it has passed.
        CREATE FUNCTION th_int(v json) RETURNS numeric
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
            SELECT CASE WHEN json_typeof(v) = 'number' THEN
                CASE WHEN v::text ~ '^-?[0-9]{1,19}$' THEN
                    CASE WHEN v::text::numeric BETWEEN -9223372036854775808 AND 9223372036854775807
                    THEN v::text::numeric END
                END
            END
        $fn$;

        -- SQLite's REAL value of a JSON number (any number th_int leaves out), else NULL.
        CREATE FUNCTION th_real(v json) RETURNS float8
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
            SELECT CASE WHEN json_typeof(v) = 'number' THEN
                CASE WHEN th_int(v) IS NULL THEN v::text::float8 END
            END
        $fn$;

        -- The text SQLite gives a JSON value in a string filter: strings unquoted, true/false,
        -- integers as written, reals as th_real_text, objects/arrays as their JSON text; NULL for
        -- null. PL/pgSQL so that the argument (a path into a JSON column) is parsed once.
        CREATE FUNCTION th_text(v json) RETURNS text
        LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
        DECLARE
            kind text := json_typeof(v);
            n numeric;
        BEGIN
            IF kind = 'null' THEN RETURN NULL; END IF;
            IF kind <> 'number' THEN RETURN v #>> '{}'; END IF;
            n := th_int(v);
            IF n IS NOT NULL THEN RETURN v::text; END IF;
            RETURN th_real_text(v::text::float8);
        END
        $fn$;

        -- contains: a substring of the text form; on an array, of any element's text form.
        CREATE FUNCTION th_contains(v json, needle text) RETURNS boolean
        LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
        BEGIN
            IF json_typeof(v) = 'array' THEN
                RETURN EXISTS (SELECT 1 FROM json_array_elements(v) AS j (value)
                               WHERE strpos(th_text(j.value), needle) > 0);
            END IF;
            RETURN strpos(th_text(v), needle) > 0;
        END
        $fn$;

        -- A JSON number within bounds (NULL = unbounded), compared as SQLite compares it: an
        -- INTEGER exactly against [i_lo, i_hi], a REAL against [r_lo, r_hi]. The caller derives
        -- both pairs from one filter value so that each comparison is exact (compile.py).
        CREATE FUNCTION th_num_in(v json, i_lo numeric, i_hi numeric, r_lo float8, r_hi float8)
        RETURNS boolean LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $fn$
        DECLARE
            n numeric;
            r float8;
        BEGIN
            IF v IS NULL OR json_typeof(v) <> 'number' THEN RETURN false; END IF;
            n := th_int(v);
            IF n IS NOT NULL THEN
                RETURN (i_lo IS NULL OR n >= i_lo) AND (i_hi IS NULL OR n <= i_hi);
            END IF;
            r := v::text::float8;
            RETURN (r_lo IS NULL OR r >= r_lo) AND (r_hi IS NULL OR r <= r_hi);
        END
        $fn$;

        -- SQLite's julianday() of a string as Unix ms (julianday's own integer ms, iJD, minus the
        -- epoch's), NULL where julianday is NULL. The forms it reads, in its order:
        -- [-]YYYY-MM-DD then spaces or 'T's then nothing or a time; a time alone (on 2000-01-01);
        -- 'now'; a number (a julian day number in [0, 5373484.5)). A time is HH:MM[:SS[.F+]]
        -- then optional spaces, 'Z' or +-HH:MM, spaces. Day 1-31 in any month (normalised),
        -- hour up to 24, zone up to 14 h. The fraction of a second is accumulated in doubles as
        -- SQLite does, then rounded to the ms. STABLE because of 'now'.
        CREATE FUNCTION th_julian_ms(s text) RETURNS bigint
        LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE AS $fn$
        DECLARE
            d text[];
            t text[];
            m text[];
            rest text;
            y int := 2000;
            mo int := 1;
            dd int := 1;
            h int;
            mi int;
            sec int;
            tz int := 0;
            frac text;
            fm float8 := 0;
            fscale float8 := 1;
            fm_inf boolean := false;
            scale_inf boolean := false;
            a int;
            b int;
            ijd bigint;
            ip text;
            fp text;
            es text;
            ev int;
            p int;
            r float8;
        BEGIN
            d := regexp_match(s, '^(-?)([0-9]{4})-([0-9]{2})-([0-9]{2})[ \t\n\v\f\rT]*(.*)$');
            IF d IS NOT NULL THEN
                mo := d[3]::int;
                dd := d[4]::int;
                IF mo < 1 OR mo > 12 OR dd < 1 OR dd > 31 THEN RETURN NULL; END IF;
                y := d[2]::int;
                IF d[1] = '-' THEN y := -y; END IF;
                rest := d[5];
            ELSE
                rest := s;
            END IF;
            IF rest <> '' THEN
                t := regexp_match(rest, '^([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]+))?)?'
                                     '[ \t\n\v\f\r]*(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))?[ \t\n\v\f\r]*$');
                IF t IS NOT NULL AND (t[1]::int > 24 OR t[2]::int > 59 OR coalesce(t[3]::int, 0) > 59
                                      OR coalesce(t[7]::int, 0) > 14 OR coalesce(t[8]::int, 0) > 59) THEN
                    t := NULL;
                END IF;
                IF t IS NULL AND d IS NOT NULL THEN RETURN NULL; END IF;
            END IF;
            IF d IS NULL AND t IS NULL THEN
                IF length(s) = 3 AND lower(s) = 'now' THEN
                    ijd := floor(extract(epoch FROM statement_timestamp()) * 1000)::bigint + 210866760000000;
                ELSE
                    m := regexp_match(s, '^[ \t\n\v\f\r]*([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?)([0-9]+))?[ \t\n\v\f\r]*$');
                    IF m IS NULL OR m[2] || coalesce(m[3], '') = '' THEN RETURN NULL; END IF;
                    ip := ltrim(m[2], '0');
                    fp := coalesce(m[3], '');
                    IF ip = '' AND ltrim(fp, '0') = '' THEN
                        ijd := 0;  -- zero, or minus zero (>= 0.0 too)
                    ELSE
                        es := ltrim(coalesce(m[5], ''), '0');
                        ev := CASE WHEN length(es) > 6 THEN 1000000 WHEN es = '' THEN 0 ELSE es::int END;
                        IF m[4] = '-' THEN ev := -ev; END IF;
                        -- p: the power of ten of the leading digit, so no cast meets a range error.
                        IF ip <> '' THEN
                            p := length(ip) - 1 + ev;
                        ELSE
                            p := -(length(fp) - length(ltrim(fp, '0')) + 1) + ev;
                        END IF;
                        IF p >= 7 THEN RETURN NULL; END IF;      -- past julian day 5373484.5
                        IF p <= -324 THEN
                            ijd := 0;                             -- underflows to (minus) zero
                        ELSE
                            r := s::float8;
                            IF r < 0 OR r >= 5373484.5 THEN RETURN NULL; END IF;
                            ijd := trunc(r * 86400000.0 + 0.5)::bigint;
                        END IF;
                    END IF;
                END IF;
            ELSE
                IF mo <= 2 THEN
                    y := y - 1;
                    mo := mo + 12;
                END IF;
                a := y / 100;  -- integer division truncates towards zero, as in C
                b := 2 - a + a / 4;
                ijd := (36525 * (y + 4716) / 100 + 306001 * (mo + 1) / 10000 + dd + b)::bigint * 86400000
                       - 131716800000;
                IF t IS NOT NULL THEN
                    h := t[1]::int;
                    mi := t[2]::int;
                    sec := coalesce(t[3]::int, 0);
                    frac := coalesce(t[4], '');
                    FOR i IN 1 .. length(frac) LOOP
                        IF fm > 1.7976931348623157e307 THEN fm_inf := true; END IF;
                        IF fscale > 1.7976931348623157e307 THEN scale_inf := true; END IF;
                        IF NOT fm_inf THEN fm := fm * 10.0 + (ascii(substr(frac, i, 1)) - 48); END IF;
                        IF NOT scale_inf THEN fscale := fscale * 10.0; END IF;
                    END LOOP;
                    IF fm_inf THEN RETURN NULL; END IF;  -- inf / inf: NaN ms, an invalid date
                    fm := CASE WHEN scale_inf THEN 0 ELSE fm / fscale END;
                    ijd := ijd + h * 3600000 + mi * 60000 + trunc((sec + fm) * 1000.0 + 0.5)::bigint;
                    IF t[6] IS NOT NULL THEN
                        tz := (t[7]::int * 60 + t[8]::int) * CASE WHEN t[6] = '-' THEN -1 ELSE 1 END;
                        ijd := ijd - tz * 60000;
                    END IF;
                END IF;
            END IF;
            IF ijd < 0 OR ijd > 464269060799999 THEN RETURN NULL; END IF;
            RETURN ijd - 210866760000000;
        END
        $fn$;

        -- datetime filters on JSON: numbers are ms (compared as th_num_in does), strings are read
        -- by th_julian_ms (a REAL in SQLite: compared against [r_lo, r_hi]), anything else fails.
        CREATE FUNCTION th_ms_in(v json, i_lo numeric, i_hi numeric, r_lo float8, r_hi float8)
        RETURNS boolean LANGUAGE plpgsql STABLE PARALLEL SAFE AS $fn$
        DECLARE
            kind text := json_typeof(v);
            ms bigint;
        BEGIN
            IF kind = 'number' THEN RETURN th_num_in(v, i_lo, i_hi, r_lo, r_hi); END IF;
            IF kind IS DISTINCT FROM 'string' THEN RETURN false; END IF;
            ms := th_julian_ms(v #>> '{}');
            RETURN ms IS NOT NULL AND (r_lo IS NULL OR ms::float8 >= r_lo) AND (r_hi IS NULL OR ms::float8 <= r_hi);
        END
        $fn$;

        -- SQLite's total(): a running double sum of the non-NULL values, 0.0 for none, saturating
        -- at +-Infinity where float8 + float8 would raise "value out of range". The halves are
        -- exact for values >= 1, and overflow needs both operands that large: a + b overflows
        -- exactly when a/2 + b/2 reaches 2^1023.
        CREATE FUNCTION th_total_step(acc float8, v float8) RETURNS float8
        LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $fn$
        DECLARE
            half float8;
        BEGIN
            IF v IS NULL THEN RETURN acc; END IF;
            -- (PostgreSQL orders NaN above every number: keep it away from abs() and sign().)
            IF acc = 'NaN'::float8 OR v = 'NaN'::float8 THEN RETURN 'NaN'::float8; END IF;
            IF abs(acc) >= 1 AND abs(v) >= 1 THEN
                half := acc * 0.5 + v * 0.5;
                IF half = 'NaN'::float8 THEN RETURN half; END IF;  -- Infinity + -Infinity
                IF abs(half) >= power(2::float8, 1023) THEN RETURN sign(half) * 'Infinity'::float8; END IF;
            END IF;
            RETURN acc + v;
        END
        $fn$;
        CREATE AGGREGATE th_total(float8) (SFUNC = th_total_step, STYPE = float8, INITCOND = '0');
        """,
    ),
]


async def current_version(conn: AsyncConnection) -> int:
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL)"
    )
    row = await (await conn.execute("SELECT max(version) FROM schema_migrations")).fetchone()
    return int(row[0] or 0) if row else 0


async def migrate(conn: AsyncConnection) -> int:
    """Apply every step newer than the database, each in its own transaction, under the advisory
    lock; return the version. ``conn`` must be in autocommit mode."""
    await conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
    try:
        version = await current_version(conn)
        for step, sql in MIGRATIONS:
            if step <= version:
                continue
            async with conn.transaction():
                await conn.execute(sql)  # no parameters: the simple protocol runs every statement
                await conn.execute("INSERT INTO schema_migrations VALUES (%s, now())", (step,))
            version = step
        return version
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))


def latest_version() -> int:
    return MIGRATIONS[-1][0]
