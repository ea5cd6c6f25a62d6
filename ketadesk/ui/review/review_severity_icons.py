"""Severity shown without relying on colour: a shape and glyph per severity, plus the word.

Used by the interaction review and the interruptive alert.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPen, QPixmap, QPolygonF
from PySide6.QtWidgets import QHBoxLayout, QLabel, QWidget

SEVERITY_TEXT = {
    "contraindicated": "CONTRAINDICATED",
    "major": "MAJOR",
    "moderate": "MODERATE",
    "minor": "MINOR",
}
SEVERITY_COLOUR = {
    "contraindicated": "#a3001b",
    "major": "#b34700",
    "moderate": "#7a5c00",
    "minor": "#1f5fa8",
}


def severity_pixmap(severity: str, size: int = 22) -> QPixmap:
    """A shape per severity, so it reads without colour: octagon (contraindicated), triangle
    (major), diamond (moderate), circle (minor), each with a glyph inside."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    colour = QColor(SEVERITY_COLOUR.get(severity, "#555555"))
    painter.setPen(QPen(colour.darker(130), 1))
    painter.setBrush(colour)
    s = float(size)
    m = 1.0
    if severity == "contraindicated":
        k = s * 0.29
        points = [
            (k, m), (s - k, m), (s - m, k), (s - m, s - k),
            (s - k, s - m), (k, s - m), (m, s - k), (m, k),
        ]
        painter.drawPolygon(QPolygonF([QPointF(x, y) for x, y in points]))
        glyph = "×"
    elif severity == "major":
        painter.drawPolygon(
            QPolygonF([QPointF(s / 2, m), QPointF(s - m, s - m), QPointF(m, s - m)])
        )
        glyph = "!"
    elif severity == "moderate":
        painter.drawPolygon(
            QPolygonF(
                [QPointF(s / 2, m), QPointF(s - m, s / 2), QPointF(s / 2, s - m),
                 QPointF(m, s / 2)]
            )
        )
        glyph = "!"
    else:
        painter.drawEllipse(QRectF(m, m, s - 2 * m, s - 2 * m))
        glyph = "i"
    font = QFont()
    font.setBold(True)
    font.setPixelSize(int(s * 0.55))
    painter.setFont(font)
    painter.setPen(QColor("white"))
    text_rect = QRectF(0, s * 0.12 if severity == "major" else 0, s, s)
    painter.drawText(text_rect, Qt.AlignmentFlag.AlignCenter, glyph)
    painter.end()
    return pixmap


def severity_icon(severity: str) -> QIcon:
    return QIcon(severity_pixmap(severity))


def not_checked_pixmap(size: int = 16) -> QPixmap:
    """A hollow square with a question mark: "this was not checked"."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(QPen(QColor("#333333"), 1.5))
    painter.drawRect(QRectF(1, 1, size - 2, size - 2))
    font = QFont()
    font.setBold(True)
    font.setPixelSize(int(size * 0.7))
    painter.setFont(font)
    painter.drawText(QRectF(0, 0, size, size), Qt.AlignmentFlag.AlignCenter, "?")
    painter.end()
    return pixmap


def severity_badge(severity: str) -> QWidget:
    """Icon plus the severity in capitals (never colour alone)."""
    badge = QWidget()
    layout = QHBoxLayout(badge)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(6)
    icon = QLabel()
    icon.setPixmap(severity_pixmap(severity))
    text = QLabel(SEVERITY_TEXT.get(severity, severity.upper()))
    text.setObjectName("severityText")
    text.setStyleSheet(
        f"color: {SEVERITY_COLOUR.get(severity, '#333')}; font-weight: bold; letter-spacing: 1px;"
    )
    layout.addWidget(icon)
    layout.addWidget(text)
    return badge
