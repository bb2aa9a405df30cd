"""The corpus stage: Wikipedia (MediaWiki API and XML dumps), BBC News (sitemaps, live and saved
pages), the user's labelled datasets (input schema CSV), and cleaning: normalisation, boilerplate
removal, language ID, exact and near-duplicate removal, chunking, and the corpus checks.
"""
