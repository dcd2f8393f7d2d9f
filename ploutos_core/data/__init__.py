"""Market data: the panel data model, the data-source contract, validation and loading."""

from ploutos_core.data.panel import DateRange, Panel
from ploutos_core.data.source import DataRequest, DataSource

__all__ = ["DataRequest", "DataSource", "DateRange", "Panel"]
