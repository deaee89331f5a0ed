-- stitch-alpha.sql -- the learned cross-stitch matrices of every trial,
-- one row per entry: A^l[dst, src], the weight task dst's column gives
-- task src's column after hidden layer l (tensor "stitch<l>", T x T,
-- row-major, in the trial's stored final parameters).
--
-- The weights blob holds float32 values (little-endian) for trials run by
-- build/mtlab; SQLite has no float decoder, so each value is rebuilt from
-- its four bytes: sign, 8-bit exponent e, 23-bit mantissa f; the value is
-- (-1)^sign (1 + f / 2^23) 2^(e - 127), or f 2^-149 when e = 0 (2^k is
-- formed from integer shifts of at most 62 bits, so no math functions are
-- needed; exact for every finite value below 2^63).  Trials stored as
-- float64 (test builds) are left out.
--
-- Columns: trial_id, model, tensor, dst, src (1-based), value.
WITH RECURSIVE idx(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM idx WHERE i < 63),
entry AS (
    SELECT t.trial_id, r.model, t.name AS tensor, t.cols AS T, idx.i,
           hex(substr(w.data, 4 * (t.offset + idx.i) + 1, 4)) AS h
    FROM tensor t
    JOIN weights w ON w.trial_id = t.trial_id AND w.dtype = 'float32'
    JOIN trial r ON r.id = t.trial_id
    JOIN idx ON idx.i < t.rows * t.cols
    WHERE t.name GLOB 'stitch[0-9]*'
),
bytes AS (
    SELECT trial_id, model, tensor, T, i,
           (instr('0123456789ABCDEF', substr(h, 1, 1)) - 1) * 16
               + instr('0123456789ABCDEF', substr(h, 2, 1)) - 1 AS b0,
           (instr('0123456789ABCDEF', substr(h, 3, 1)) - 1) * 16
               + instr('0123456789ABCDEF', substr(h, 4, 1)) - 1 AS b1,
           (instr('0123456789ABCDEF', substr(h, 5, 1)) - 1) * 16
               + instr('0123456789ABCDEF', substr(h, 6, 1)) - 1 AS b2,
           (instr('0123456789ABCDEF', substr(h, 7, 1)) - 1) * 16
               + instr('0123456789ABCDEF', substr(h, 8, 1)) - 1 AS b3
    FROM entry
),
parts AS (
    SELECT trial_id, model, tensor, T, i, b3 >> 7 AS sign,
           ((b3 & 127) << 1) | (b2 >> 7) AS e, ((b2 & 127) << 16) | (b1 << 8) | b0 AS f
    FROM bytes
)
SELECT trial_id, model, tensor, i / T + 1 AS dst, i % T + 1 AS src,
       (1 - 2 * sign) * CASE
           WHEN e = 0 THEN f / 4611686018427387904.0 / 4611686018427387904.0 / 33554432.0
           WHEN e >= 127 THEN (1 + f / 8388608.0) * (1 << (e - 127))
           WHEN e >= 65 THEN (1 + f / 8388608.0) / (1 << (127 - e))
           WHEN e >= 3 THEN (1 + f / 8388608.0) / 4611686018427387904.0 / (1 << (65 - e))
           ELSE (1 + f / 8388608.0) / 4611686018427387904.0 / 4611686018427387904.0
                / (1 << (3 - e))
       END AS value
FROM parts
ORDER BY trial_id, tensor, dst, src;
