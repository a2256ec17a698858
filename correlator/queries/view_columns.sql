-- The schema browser: every column of the SQL contract's views.
SELECT table_name AS view, column_name AS "column", data_type AS type
FROM information_schema.columns
WHERE list_contains($views, table_name)
ORDER BY list_position($views, table_name), ordinal_position;
