-- Builds test/data/retail_sample.csv from demo/data/online_retail.csv.gz:
-- every invoice (one row per invoice, lines summed) of the customers whose
-- id ends in 7, cancellations included.  Run from the project root:
--   psql -X -f test/data/make_retail_sample.sql
CREATE TEMP TABLE lines (invoice_no text, stock_code text, description text, quantity integer,
                         invoice_date timestamp, unit_price numeric(12, 3), customer_id integer, country text);
\copy lines FROM PROGRAM 'gzip -dc demo/data/online_retail.csv.gz' WITH (FORMAT csv, HEADER)
\copy (SELECT invoice_no, min(customer_id) AS customer_id, min(country) AS country, sum(quantity * unit_price) AS total, min(invoice_date) AS invoice_date FROM lines WHERE customer_id % 10 = 7 GROUP BY invoice_no ORDER BY min(invoice_date), invoice_no) TO 'test/data/retail_sample.csv' WITH (FORMAT csv, HEADER)
