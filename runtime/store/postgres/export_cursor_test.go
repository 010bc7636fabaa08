package postgres

// SQLUvarint is sqlUvarint, for tests.
var SQLUvarint = sqlUvarint
