"""Report outputs: Google Sheets (``sheets``) and local xlsx/CSV files (``local``)."""
