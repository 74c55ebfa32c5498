"""SPEC 13 requests on stored data: delete a video everywhere, expire kept raw text."""
